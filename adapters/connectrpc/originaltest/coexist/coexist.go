// Package coexist lets a test binary link both lnmux's API code
// (proto/lnmux) and the original lnmux API's (originaltest/lnmuxrpc). They
// describe the same wire contract under the same protobuf names
// (lnmux.Service, lnmux.Invoice, ...), and the protobuf runtime panics at
// start-up when two packages register one name, unless
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT says otherwise. Importing this
// package sets it to "ignore" before either registers: Go initialises
// packages in import-path order among those whose imports are ready, and
// this one (".../originaltest/coexist", importing only os) is ready as soon
// as os is and sorts before both generated packages. The first registration
// wins in the global registry, which only reflection and Any resolution
// read; the RPC code paths use the generated types directly.
//
// For tests only.
package coexist

import "os"

const env = "GOLANG_PROTOBUF_REGISTRATION_CONFLICT"

func init() {
	if os.Getenv(env) == "" {
		_ = os.Setenv(env, "ignore")
	}
}
