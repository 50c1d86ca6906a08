"""The kernel of one run: the session every runtime reports to, which gates each tool call
through the policy, counts limits, writes the trace and emits events. May import memory/ and
lower layers, never a runtime."""
