// Package ports declares the interfaces between lnmux's application core and
// the outside world: driven ports (nodes, store, clock, telemetry) that
// adapters implement for the core, and the driving port (Service) that the
// RPC adapter calls. They are shaped by the application, not by lnrpc or SQL.
package ports
