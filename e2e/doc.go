// Package e2e drives the real tokensmith binary as separate processes over loopback HTTP: the
// first start a newcomer sees, the CLI, restarts on the file store, and configuration errors.
package e2e
