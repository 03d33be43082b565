"""pip install of Ferry's Python API from this source tree, offline:

    /usr/bin/python3 -m pip install --no-build-isolation .
    /usr/bin/python3 -m pip wheel --no-build-isolation --no-deps -w dist .   # a wheel file

(--no-build-isolation: use Debian's setuptools instead of fetching one.) The extension is
built by the project's CMake; FERRY_BUILD_DIR reuses an existing build directory, and
FERRY_PYTHON_MOONCAKE_ALIAS=0 leaves out the mooncake.engine alias package.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
# One version for the library and the wheel: the project() line of CMakeLists.txt.
with open(os.path.join(ROOT, "CMakeLists.txt")) as cmake_lists:
    VERSION = re.search(r"project\(ferry VERSION ([0-9.]+)", cmake_lists.read()).group(1)
ALIAS = os.environ.get("FERRY_PYTHON_MOONCAKE_ALIAS", "1") != "0"


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("FERRY_BUILD_DIR") or os.path.abspath(os.path.join(self.build_temp, "cmake"))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DFERRY_BUILD_TESTS=OFF",
                                   "-DFERRY_BUILD_TOOLS=OFF", "-DPython3_EXECUTABLE=" + sys.executable])
        subprocess.check_call(["cmake", "--build", build_dir, "-j2", "--target", "ferry_python_engine"])
        built = glob.glob(os.path.join(build_dir, "python", "ferry", "engine*.so"))
        if not built:
            raise RuntimeError("CMake did not produce ferry/engine*.so in " + build_dir)
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(built[0], dest)


setup(
    name="ferry-transfer-engine",
    version=VERSION,
    description="Ferry transfer engine: the Mooncake Transfer Engine Python API",
    package_dir={"": "python"},
    packages=["ferry"] + (["mooncake"] if ALIAS else []),
    ext_modules=[Extension("ferry.engine", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.8",
    zip_safe=False,
    # Separate staging per variant: setuptools keeps staged files between runs, and a
    # package left over from the other variant must not leak into this one.
    options={"build": {"build_base": os.path.join(ROOT, "build", "pip-" + ("alias" if ALIAS else "noalias"))}},
)
