package sqlstore

import "golang.org/x/sys/unix"

// setTCPUserTimeout bounds how long sent data may stay unacknowledged
// before the kernel drops the connection.
func setTCPUserTimeout(fd uintptr, ms int) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
}
