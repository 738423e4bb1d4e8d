package lnd

import (
	"testing"
	"time"
)

func TestKeepaliveAdvice(t *testing.T) {
	tests := []struct {
		name        string
		config      map[string]string
		lax, known  bool
		time, limit time.Duration
	}{
		{name: "lnd's defaults", config: map[string]string{"grpc.server-ping-time": "1m0s", "grpc.server-ping-timeout": "20s"},
			lax: true, known: true, time: time.Minute, limit: 20 * time.Second},
		{name: "recommended", config: map[string]string{"grpc.server-ping-time": "1s", "grpc.server-ping-timeout": "3s"},
			known: true, time: time.Second, limit: 3 * time.Second},
		{name: "not reported", config: map[string]string{}},
	}
	for _, tt := range tests {
		pt, po, lax, known := keepaliveAdvice(tt.config)
		if lax != tt.lax || known != tt.known || pt != tt.time || po != tt.limit {
			t.Errorf("%s: got (%s, %s, lax %v, known %v), want (%s, %s, lax %v, known %v)",
				tt.name, pt, po, lax, known, tt.time, tt.limit, tt.lax, tt.known)
		}
	}
}
