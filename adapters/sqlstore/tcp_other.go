//go:build !linux

package sqlstore

// setTCPUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keepalives still bound how long a dead peer goes unnoticed.
func setTCPUserTimeout(uintptr, int) error { return nil }
