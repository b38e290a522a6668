package store

import "time"

// File is one source file of a package.
type File struct {
	Name    string
	Content []byte
}

// NewPackage is a validated package to deploy.
type NewPackage struct {
	Name     string
	Sha256   string   // hex digest over the files, computed by the caller
	Services []string // services the package registers, found by validation
	Files    []File   // sorted by name
}

// Package is one stored version of a package.
type Package struct {
	Name      string
	Version   int64 // counted per name from 1
	Sha256    string
	Author    string
	SizeBytes int64 // total of the files' sizes
	Services  []string
	Files     []File // Content is nil where a method says "without file contents"
	CreatedAt time.Time
	Revision  int64 // the revision that stored this version
}

// DeployResult is the outcome of a Deploy.
type DeployResult struct {
	Revision int64 // current revision after the deploy
	Packages []DeployedPackage
}

// DeployedPackage is what Deploy did with one package.
type DeployedPackage struct {
	Package   Package // the current version, without file contents
	Unchanged bool
}

// Service is a service registered by a deployed package.
type Service struct {
	Name           string
	Package        string
	PackageVersion int64
}

// Channel is an HTTP channel.
type Channel struct {
	Name         string
	Path         string
	Methods      []string
	Service      string
	Active       bool
	TimeoutMs    int64
	MaxBodyBytes int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Revision     int64 // revision of the last change
}

// Desired is the whole config at one revision.
type Desired struct {
	Revision int64
	Packages []Package // current versions with file contents, sorted by name
	Channels []Channel // sorted by name
}

// AgentHello is what an agent says about itself when it connects.
type AgentHello struct {
	ID              string
	Labels          map[string]string
	BuildVersion    string
	HTTPAddress     string
	PID             int64
	StartedAt       time.Time
	AppliedRevision int64
	AppliedHash     string
}

// Agent is an agent's stored state.
type Agent struct {
	ID              string
	Labels          map[string]string
	BuildVersion    string
	HTTPAddress     string
	PID             int64
	StartedAt       time.Time
	Connected       bool
	AppliedRevision int64
	AppliedHash     string
	FailedRevision  int64  // last revision the agent refused; 0 for none
	LastError       string // the refusal's message; cleared by a later ACK
	FirstSeen       time.Time
	LastSeen        time.Time
}
