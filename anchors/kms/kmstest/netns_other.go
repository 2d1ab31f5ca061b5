//go:build !linux

package kmstest

import "errors"

func runInPrivateNetwork() (int, error) {
	return 0, errors.New("private network namespaces need Linux")
}

func loopbackUp() error { return errors.New("private network namespaces need Linux") }
