//go:build !faultinject

package crashpoint

// Hit marks a point where the runtime may die; in this build it does nothing.
func Hit(string) {}
