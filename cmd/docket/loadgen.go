package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// loadConn is one keep-alive HTTP/1.1 connection of the load generator,
// posting one prebuilt request over and over. The generator runs on the
// cores it measures, so it does the least a client can (as wrk does): the
// request's bytes are built once, and a response is read by its status
// line, Content-Length or chunked framing, and body, into a reused buffer.
// The server still parses every request in full.
type loadConn struct {
	addr string
	req  []byte
	conn net.Conn
	r    *bufio.Reader
	body []byte
}

// newLoadConn prepares a POST of body to path on addr with the given
// headers (each "Name: value").
func newLoadConn(addr, path string, body []byte, headers ...string) *loadConn {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, addr, len(body))
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return &loadConn{addr: addr, req: b.Bytes()}
}

// do sends the request and reads the response, returning its status and
// body (valid until the next call). A broken connection is redialled on
// the next call.
func (c *loadConn) do() (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn = conn
		if c.r == nil {
			c.r = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.r.Reset(conn)
		}
	}
	status, body, err := c.roundTrip()
	if err != nil {
		c.Close()
	}
	return status, body, err
}

func (c *loadConn) roundTrip() (int, []byte, error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, nil, err
	}
	line, err := c.line()
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		h, err := c.line()
		if err != nil {
			return 0, nil, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("malformed header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			l, err := c.line()
			if err != nil {
				return 0, nil, err
			}
			l, _, _ = bytes.Cut(l, []byte(";"))
			n, err := strconv.ParseUint(string(bytes.TrimSpace(l)), 16, 31)
			if err != nil {
				return 0, nil, fmt.Errorf("malformed chunk size %q", l)
			}
			if n == 0 {
				for { // trailers, up to the blank line
					if t, err := c.line(); err != nil || len(t) == 0 {
						if err != nil {
							return 0, nil, err
						}
						break
					}
				}
				break
			}
			if err := c.read(int(n)); err != nil {
				return 0, nil, err
			}
			if crlf, err := c.line(); err != nil || len(crlf) != 0 {
				return 0, nil, errors.New("malformed chunk")
			}
		}
	case length >= 0:
		if err := c.read(length); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, errors.New("response without Content-Length or chunked encoding")
	}
	if closing {
		c.Close()
	}
	return status, c.body, nil
}

// line reads a CRLF-terminated line without its terminator.
func (c *loadConn) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(l[:len(l)-1], []byte("\r")), nil
}

// read appends the next n body bytes to c.body.
func (c *loadConn) read(n int) error {
	c.body = append(c.body, make([]byte, n)...)
	_, err := io.ReadFull(c.r, c.body[len(c.body)-n:])
	return err
}

// Close closes the connection; the next do dials a new one.
func (c *loadConn) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
