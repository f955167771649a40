package telemetry

import "runtime/debug"

// version is set at link time by `make build` (-ldflags "-X …/internal/telemetry.version=<git describe>").
var version string

// Version is the build's version: the one stamped at link time, else the main module's version as the Go
// toolchain recorded it (a tag, or a pseudo-version from the commit), else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
