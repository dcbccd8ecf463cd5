// Package e2e drives the real tokensmith binary as separate processes over loopback HTTP: the
// first start a newcomer sees, the CLI, restarts on the file store, configuration errors,
// replicas on Redis, and an integrator's whole day (TestIntegratorsDay), in which the example
// resource server (examples/resource-server) verifies tokens through package verify.
package e2e
