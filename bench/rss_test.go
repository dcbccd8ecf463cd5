package main

import (
	"os"
	"testing"
)

// TestRSSParts: the split of this process's resident set adds up to its VmRSS (both come from
// the same page tables, read a moment apart), and each part that must be there is.
func TestRSSParts(t *testing.T) {
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	p := rssPartsOf(os.Getpid())
	total := procStatus(os.Getpid(), "VmRSS:")
	sum := p.exe + p.libs + p.anon
	if p.exe <= 0 || p.anon < 8<<20 || p.libs < 0 {
		t.Fatalf("parts %+v: want the executable's pages, at least the 8 MiB just written as anonymous, no negative part", p)
	}
	if diff := sum - total; diff < -total/10 || diff > total/10 {
		t.Fatalf("parts %+v add up to %d bytes, VmRSS is %d", p, sum, total)
	}
	_ = buf[len(buf)-1]
}
