package domain

import (
	"bytes"
	"fmt"
)

// IdentityKeyLen is the length of lnmux's identity key: the secp256k1
// private key of the virtual node, from which the invoice codec's keys and
// the macaroon root keys are derived too.
const IdentityKeyLen = 32

// secp256k1Order is the order n of the secp256k1 group, big-endian.
var secp256k1Order = [IdentityKeyLen]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
}

// ValidateIdentityKey is the one check of an identity key: 32 bytes, above
// zero and below the curve order. A value outside that range is no private
// key at all, and btcec would silently reduce it to another one. The error
// never contains the key or any part of it: it may end up in a log.
func ValidateIdentityKey(key []byte) error {
	if len(key) != IdentityKeyLen {
		return fmt.Errorf("%w: identity key must be %d bytes, got %d", ErrInvalidArgument, IdentityKeyLen, len(key))
	}
	if bytes.Equal(key, make([]byte, IdentityKeyLen)) || bytes.Compare(key, secp256k1Order[:]) >= 0 {
		return fmt.Errorf("%w: identity key is not a valid secp256k1 private key (it must be above 0 and below the curve order)", ErrInvalidArgument)
	}
	return nil
}
