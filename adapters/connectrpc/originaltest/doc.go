// Package originaltest holds tests that act as an unchanged client of the
// original lnmux API (bottlepay/lnmux): lnmuxrpc is generated from the
// original's published lnmux.proto by buf.gen.yaml here, and the tests run
// every original RPC against lnmux's API adapter. See docs/compatibility.md.
//
// Nothing outside tests may import lnmuxrpc: it registers the same protobuf
// names as proto/lnmux (see package coexist).
package originaltest
