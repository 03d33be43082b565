// ferry.engine: the Python module (names, arguments and defaults of spec/python-api.md)
// over ferry_py::PyTransferEngine (py_transfer_engine.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common/environment.h"
#include "ferry/version.h"
#include "py_log.h"
#include "py_transfer_engine.h"

namespace py = pybind11;
using namespace ferry_py;

PYBIND11_MODULE(engine, m) {
  m.doc() = "Ferry transfer engine (the Mooncake Transfer Engine Python API)";

  py::enum_<Opcode>(m, "TransferOpcode").value("READ", Opcode::READ).value("WRITE", Opcode::WRITE);

  py::class_<Notify>(m, "TransferNotify")
      .def(py::init<>())
      .def(py::init([](std::string name, std::string msg) { return Notify{std::move(name), std::move(msg)}; }),
           py::arg("name"), py::arg("msg"))
      .def_readwrite("name", &Notify::name)
      .def_readwrite("msg", &Notify::msg)
      .def("__repr__", [](const Notify& n) { return "TransferNotify(name='" + n.name + "', msg='" + n.msg + "')"; });

  py::class_<InnerEngine>(m, "InnerTransferEngine")
      .def("get_segment_name", [](const InnerEngine& e) { return e.engine ? e.engine->getSegmentName() : ""; })
      .def("get_rpc_port", [](const InnerEngine& e) { return e.engine ? e.engine->getRpcServerPort() : 0; });

  // A GPU and its driver are here (no CUDA call at import: a process that forks later keeps
  // CUDA usable in its children). The GPU paths themselves say why when they cannot run.
  // Ferry's own log lines: stderr by default; these send them to Python's logging.
  m.def(
      "log_to_python", [](const std::string& name) { PythonLogForwarder::instance().start(name); },
      py::arg("logger_name") = "ferry",
      "Sends Ferry's log lines to logging.getLogger(logger_name) (levels DEBUG..ERROR) instead of stderr.");
  m.def(
      "log_to_stderr", [] { PythonLogForwarder::instance().stop(); }, "Sends Ferry's log lines to stderr again.");
  m.def(
      "set_log_level",
      [](const std::string& level) {
        const auto named = ferry::log::levelNamed(level.c_str());
        if (!named) throw py::value_error("log level must be debug, info, warn, error or off, not '" + level + "'");
        ferry::log::setLevel(*named);
      },
      py::arg("level"), "The level below which Ferry drops its log lines, process-wide.");
  // Before the interpreter goes: the forwarding thread must not wait for a GIL that will not come.
  py::module_::import("atexit").attr("register")(py::cpp_function([] { PythonLogForwarder::instance().stop(); }));
  if (ferry::env::value("FERRY_LOG_TO_PYTHON") && ferry::env::truthy(ferry::env::value("FERRY_LOG_TO_PYTHON")))
    PythonLogForwarder::instance().start("ferry");

  m.attr("__version__") = ferry::version();
  m.attr("SUPPORT_CUDA") = ferry::ext::cudaDriverPresent();
  m.attr("SUPPORT_EFA") = false;
  m.attr("SUPPORT_HIP") = false;
  m.attr("SUPPORT_MNNVL") = false;
  m.attr("SUPPORT_INTRA_NVLINK") = ferry::ext::cudaDriverPresent();

  using E = PyTransferEngine;
  const auto hint = py::arg("transport_hint") = "";
  // Request's priority, deadline and checksum (Ferry extensions, keyword arguments after the hint).
  const auto priority = py::arg("priority") = 0;
  const auto deadline = py::arg("deadline_ns") = 0;
  const auto checksum = py::arg("checksum") = false;
  py::class_<E>(m, "TransferEngine")
      .def(py::init<>())
      .def("initialize", &E::initialize, py::arg("local_hostname"), py::arg("metadata_server"),
           py::arg("protocol"), py::arg("device_name"))
      .def("initialize_ext", &E::initialize_ext, py::arg("local_hostname"), py::arg("metadata_server"),
           py::arg("protocol"), py::arg("device_name"), py::arg("metadata_type"))
      .def("get_engine", &E::get_engine)
      // The address of the C++ ferry::TransferEngine underneath, for extensions that link
      // libferry and share this engine (valid while this object lives).
      .def("get_engine_ptr", [](E& e) { return e.enginePtr(); })
      .def("get_rpc_port", &E::get_rpc_port)
      .def("allocate_managed_buffer", &E::allocate_managed_buffer, py::arg("length"))
      .def("free_managed_buffer", &E::free_managed_buffer, py::arg("buffer_addr"), py::arg("length"))
      .def("get_first_buffer_address", &E::get_first_buffer_address, py::arg("segment_name"))
      .def("transfer_sync_write", &E::transfer_sync_write, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("length"), hint, priority, deadline, checksum)
      .def("transfer_sync_read", &E::transfer_sync_read, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("length"), hint, priority, deadline, checksum)
      .def("transfer_sync", &E::transfer_sync, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("length"), py::arg("opcode"),
           py::arg("notify") = py::none(), hint, priority, deadline, checksum)
      .def("transfer_submit_write", &E::transfer_submit_write, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("length"), hint, priority, deadline, checksum)
      .def("transfer_check_status", &E::transfer_check_status, py::arg("batch_id"))
      .def("batch_transfer_sync_write", &E::batch_transfer_sync_write, py::arg("target_hostname"),
           py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"), hint, priority, deadline, checksum)
      .def("batch_transfer_sync_read", &E::batch_transfer_sync_read, py::arg("target_hostname"),
           py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"), hint, priority, deadline, checksum)
      .def("batch_transfer_sync", &E::batch_transfer_sync, py::arg("target_hostname"), py::arg("buffers"),
           py::arg("peer_buffer_addresses"), py::arg("lengths"), py::arg("opcode"),
           py::arg("notify") = py::none(), hint, priority, deadline, checksum)
      .def("batch_transfer_async_write", &E::batch_transfer_async_write, py::arg("target_hostname"),
           py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"), hint, priority, deadline, checksum)
      .def("batch_transfer_async_read", &E::batch_transfer_async_read, py::arg("target_hostname"),
           py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"), hint, priority, deadline, checksum)
      .def("batch_transfer_async", &E::batch_transfer_async, py::arg("target_hostname"), py::arg("buffers"),
           py::arg("peer_buffer_addresses"), py::arg("lengths"), py::arg("opcode"), hint, priority, deadline, checksum)
      .def("get_batch_transfer_status", &E::get_batch_transfer_status, py::arg("batch_ids"))
      .def("cancel_transfer", &E::cancel_transfer, py::arg("batch_id"))
      .def("digest", &E::digest, py::arg("target_hostname"), py::arg("peer_buffer_address"), py::arg("length"))
      .def("get_checksum_mismatches", &E::get_checksum_mismatches)
      .def("paged_transfer_sync", &E::paged_transfer_sync, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("page_size"), py::arg("local_pages"), py::arg("remote_pages"),
           py::arg("opcode"), py::arg("num_layers") = 1, py::arg("local_layer_stride") = 0,
           py::arg("remote_layer_stride") = 0, hint, priority, deadline, checksum)
      .def("paged_transfer_async", &E::paged_transfer_async, py::arg("target_hostname"), py::arg("buffer"),
           py::arg("peer_buffer_address"), py::arg("page_size"), py::arg("local_pages"), py::arg("remote_pages"),
           py::arg("opcode"), py::arg("num_layers") = 1, py::arg("local_layer_stride") = 0,
           py::arg("remote_layer_stride") = 0, hint, priority, deadline, checksum)
      .def("write_bytes_to_buffer", &E::write_bytes_to_buffer, py::arg("dest_address"), py::arg("src_ptr"),
           py::arg("length"))
      .def("read_bytes_from_buffer", &E::read_bytes_from_buffer, py::arg("source_address"), py::arg("length"))
      .def("register_memory", &E::register_memory, py::arg("buffer_addr"), py::arg("capacity"),
           py::arg("location") = ferry::kWildcardLocation)
      .def("unregister_memory", &E::unregister_memory, py::arg("buffer_addr"))
      .def("batch_register_memory", &E::batch_register_memory, py::arg("buffer_addresses"), py::arg("capacities"),
           py::arg("location") = ferry::kWildcardLocation)
      .def("batch_unregister_memory", &E::batch_unregister_memory, py::arg("buffer_addresses"))
      .def("get_local_topology", &E::get_local_topology, py::arg("device_name") = py::none())
      .def("get_notifies", &E::get_notifies)
      .def("send_probe", &E::send_probe, py::arg("peer_server_name"))
      .def("transfer_write_on_cuda",
           [](E& e, const std::string& target, uintptr_t buffer, uintptr_t peer, size_t length, uintptr_t stream,
              const std::string& h) {
             e.batch_transfer_on_cuda("transfer_write_on_cuda", target, {buffer}, {peer}, {length}, Opcode::WRITE,
                                      stream, h);
           },
           py::arg("target_hostname"), py::arg("buffer"), py::arg("peer_buffer_address"), py::arg("length"),
           py::arg("stream_ptr") = 0, hint)
      .def("transfer_read_on_cuda",
           [](E& e, const std::string& target, uintptr_t buffer, uintptr_t peer, size_t length, uintptr_t stream,
              const std::string& h) {
             e.batch_transfer_on_cuda("transfer_read_on_cuda", target, {buffer}, {peer}, {length}, Opcode::READ,
                                      stream, h);
           },
           py::arg("target_hostname"), py::arg("buffer"), py::arg("peer_buffer_address"), py::arg("length"),
           py::arg("stream_ptr") = 0, hint)
      .def("batch_transfer_write_on_cuda",
           [](E& e, const std::string& target, const std::vector<uintptr_t>& buffers, const std::vector<uintptr_t>& peers,
              const std::vector<size_t>& lengths, uintptr_t stream, const std::string& h) {
             e.batch_transfer_on_cuda("batch_transfer_write_on_cuda", target, buffers, peers, lengths, Opcode::WRITE,
                                      stream, h);
           },
           py::arg("target_hostname"), py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"),
           py::arg("stream_ptr") = 0, hint)
      .def("batch_transfer_read_on_cuda",
           [](E& e, const std::string& target, const std::vector<uintptr_t>& buffers, const std::vector<uintptr_t>& peers,
              const std::vector<size_t>& lengths, uintptr_t stream, const std::string& h) {
             e.batch_transfer_on_cuda("batch_transfer_read_on_cuda", target, buffers, peers, lengths, Opcode::READ,
                                      stream, h);
           },
           py::arg("target_hostname"), py::arg("buffers"), py::arg("peer_buffer_addresses"), py::arg("lengths"),
           py::arg("stream_ptr") = 0, hint);
}
