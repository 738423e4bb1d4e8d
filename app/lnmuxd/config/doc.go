// Package config is lnmuxd's configuration: its schema (Config, one struct
// whose tags give each setting's yaml key, environment variable, flag,
// default, help and masking), reading it (Load: the yaml file, then
// ardanlabs/conf for defaults, environment and flags), checking it
// (Validate, ValidateRun) and printing it with the secrets masked.
// docs/configuration.md describes the rules; package main only wires the
// values to the adapters.
package config
