package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ardanlabs/conf/v3"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// runCheckConfig is "lnmuxd [options] check-config": it loads and validates
// the configuration as the run command does (the yaml file checked
// strictly, the environment, Validate and ValidateRun: the identity key and
// the node files readable) without opening the database or connecting to
// a node, then prints OK. A deployment checks with it the file it mounts
// before a rollout (deployments/kubernetes/manifests_test.go). Warnings
// run would log (original keys read differently, unknown LNMUX_
// variables) are printed before OK. Keep the checks in step with "run" in
// main.go.
func runCheckConfig(cfg *config.Config, cmd conf.Args, stdout io.Writer) error {
	if err := noMoreArgs(cmd, 1); err != nil {
		return err
	}
	if err := errors.Join(cfg.Validate(), cfg.ValidateRun()); err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		if _, err := fmt.Fprintf(stdout, "warning: %s\n", w); err != nil {
			return err
		}
	}
	for _, name := range config.UnknownEnv(cfg, os.Environ()) {
		if _, err := fmt.Fprintf(stdout, "warning: ignoring unknown environment variable %s\n", name); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(stdout, "OK")
	return err
}
