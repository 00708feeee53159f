// Package criu turns options into CRIU command lines and CRIU's logs into
// errors. It runs nothing: callers decide where and in which namespaces
// CRIU runs. Every CRIU flag criu-ns-runtime uses is spelled here.
package criu
