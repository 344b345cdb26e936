"""The observable edge of every request: its id, its metrics and its access log.

``context`` holds what is known about the request in flight (for log lines),
``observe`` is the outermost middleware that fills it in and reports it,
``metrics`` is the Prometheus side and ``logs`` the log formats. The other edge
guards (body size, rate limits, idempotency, problem rendering) still live in
their own modules beside this package.
"""
