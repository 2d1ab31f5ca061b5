//go:build linux

package kmstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"
)

// runInPrivateNetwork runs this test binary again, with the same arguments,
// in a new network namespace (and a new user namespace, so it works without
// root where user namespaces are allowed), and returns its exit code. An
// error means no namespace could be made and nothing ran.
func runInPrivateNetwork() (int, error) {
	attrs := []*syscall.SysProcAttr{
		{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			Pdeathsig:   syscall.SIGKILL,
		},
		// Where user namespaces are disabled, root can still make a
		// network namespace alone.
		{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL},
	}
	var errs []error
	for _, attr := range attrs {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), envInNetns+"=1")
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			errs = append(errs, err)
			continue
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if code := exit.ExitCode(); code >= 0 {
				return code, nil
			}
			return 1, nil // killed by a signal; it said why on stderr, if it could
		}
		if err != nil {
			return 1, err
		}
		return 0, nil
	}
	return 0, fmt.Errorf("cannot create a private network namespace: %w", errors.Join(errs...))
}

// loopbackUp brings up the loopback interface of a fresh network namespace
// (it starts down), which then has 127.0.0.1 and nothing else.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer syscall.Close(fd)
	// struct ifreq: the interface name, then a union whose first member,
	// for SIOC[GS]IFFLAGS, is the short flags; 40 bytes on 64-bit Linux.
	var req struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], "lo")
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("loopback: get flags: %w", errno)
	}
	req.flags |= syscall.IFF_UP
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("loopback: set flags: %w", errno)
	}
	return nil
}
