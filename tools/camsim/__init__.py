"""Camera simulator: a real RTSP server (gst-rtsp-server) with test patterns and injectable faults.

Runs under the system Python (PyGObject); see README.md. Used by tests, benchmarks and the demo.
"""
