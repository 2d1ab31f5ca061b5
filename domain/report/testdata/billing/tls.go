package billing

import (
	"crypto/tls"
	"net/http"
)

// Client skips TLS verification (gosec G402, HIGH).
func Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// Connect uses a hardcoded password (gosec G101, HIGH).
func Connect() string {
	password := "s3cr3t-Pa55w0rd-for-prod"
	return "postgres://billing:" + password + "@db/billing"
}
