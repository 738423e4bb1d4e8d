package domain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestValidateIdentityKey(t *testing.T) {
	below := secp256k1Order
	below[IdentityKeyLen-1]--
	tests := []struct {
		name  string
		key   []byte
		valid bool
	}{
		{name: "one", key: append(make([]byte, IdentityKeyLen-1), 1), valid: true},
		{name: "order minus one", key: below[:], valid: true},
		{name: "a test key", key: bytes.Repeat([]byte{0x42}, IdentityKeyLen), valid: true},
		{name: "zero", key: make([]byte, IdentityKeyLen)},
		{name: "the curve order", key: secp256k1Order[:]},
		{name: "all ones", key: bytes.Repeat([]byte{0xff}, IdentityKeyLen)},
		{name: "31 bytes", key: bytes.Repeat([]byte{0x42}, IdentityKeyLen-1)},
		{name: "33 bytes", key: bytes.Repeat([]byte{0x42}, IdentityKeyLen+1)},
		{name: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateIdentityKey(tt.key)
			if tt.valid {
				if err != nil {
					t.Fatalf("ValidateIdentityKey = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ValidateIdentityKey = %v, want ErrInvalidArgument", err)
			}
			if len(tt.key) > 0 && strings.Contains(err.Error(), hex.EncodeToString(tt.key[:4])) {
				t.Errorf("error %q shows part of the key", err)
			}
		})
	}
}
