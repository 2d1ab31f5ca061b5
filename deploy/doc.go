// Package deploy holds Docket's deployment files rather than code: the
// container image (Dockerfile), a compose stack with a three-node KurrentDB
// cluster over TLS and a KMS emulator (compose.yaml), Kubernetes manifests
// (k8s/) and the recommended KurrentDB stream ACL (esdb-acl.json). Its tests
// check that those files hold what a deployment needs and that every docket
// flag and DOCKET_* variable they use is one the built binary accepts.
package deploy
