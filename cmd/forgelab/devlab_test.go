//go:build devlab

package main

import (
	"os"
	"testing"
)

// TestFabricOnRunningLab runs the link checks against a lab that is
// already up (links ab, bc as in the quickstart), for quick iterations:
// FORGELAB_TEST_LAB=NAME go test -tags devlab -run TestFabricOnRunningLab ./cmd/forgelab
// (a build tag, so CI never lists it as skipped)
func TestFabricOnRunningLab(t *testing.T) {
	lab := os.Getenv("FORGELAB_TEST_LAB")
	if lab == "" {
		t.Skip("set FORGELAB_TEST_LAB to a running lab with links ab and bc to run the link checks against it")
	}
	fabricChecks(t, lab, inspect(t, lab))
}
