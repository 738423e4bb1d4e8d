package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ardanlabs/conf/v3"
)

// Reading the configuration: the yaml file (yaml.go), then conf
// applies the defaults, the environment and the flags.

// osArgsMu serialises parses: conf v3 (v3.10 checked) reads its flags
// from os.Args and offers no option to pass them, so Load swaps os.Args
// for the duration of a parse to read the args it is given.
var osArgsMu sync.Mutex

func withOSArgs[T any](args []string, f func() (T, error)) (T, error) {
	osArgsMu.Lock()
	defer osArgsMu.Unlock()
	saved := os.Args
	os.Args = append([]string{"lnmuxd"}, args...)
	defer func() { os.Args = saved }()
	return f()
}

// Usage is conf's usage text: every setting with its flag, environment
// variable, default and help. conf reads os.Args[0] for its first line
// only, which lnmuxd replaces, so os.Args need not be swapped; the lock
// keeps that read apart from a concurrent parse's swap.
func Usage(cfg *Config) (string, error) {
	osArgsMu.Lock()
	defer osArgsMu.Unlock()
	return conf.UsageInfo(envPrefix, cfg)
}

// Load reads the configuration from the yaml file named by -c/--config
// (or LNMUX_CONFIG), the environment and args (the command line without the
// program name); version is what --version prints. On --help or --version
// it returns conf.ErrHelpWanted or conf.ErrVersionWanted together with the
// text to print (conf's usage or version). The result is normalised but
// not validated: each command validates what it needs.
func Load(args []string, version conf.Version) (*Config, string, error) {
	cfg := Config{Version: version}
	if path := configPath(args); path != "" {
		data, err := os.ReadFile(expandHome(path)) //nolint:gosec // the operator names the config file
		if err != nil {
			return nil, "", fmt.Errorf("config file: %w", err)
		}
		if err := readYAML(data, &cfg); err != nil {
			return nil, "", err
		}
	}
	text, err := withOSArgs(args, func() (string, error) {
		return conf.ParseWithOptions(envPrefix, &cfg, conf.WithStrictFlags())
	})
	switch {
	case errors.Is(err, conf.ErrHelpWanted), errors.Is(err, conf.ErrVersionWanted):
		return nil, text, err
	case err != nil:
		return nil, "", hideBadValue(err, args)
	}
	cfg.normalize()
	return &cfg, "", nil
}

// configPath returns -c/--config, else LNMUX_CONFIG: a first parse by conf
// of that setting alone, since the file must be read before the real one.
// On a bad flag or --help it returns "" and the real parse reports.
func configPath(args []string) string {
	var pre struct {
		ConfigFile string `conf:"short:c,flag:config,env:CONFIG"`
	}
	if _, err := withOSArgs(args, func() (string, error) { return conf.Parse(envPrefix, &pre) }); err != nil {
		return ""
	}
	return pre.ConfigFile
}

func (c *Config) normalize() {
	c.IdentityKey = strings.TrimSpace(c.IdentityKey)
	c.LND.Network = strings.ToLower(strings.TrimSpace(c.LND.Network))
	c.Logging.Level = strings.ToLower(strings.TrimSpace(c.Logging.Level))
	c.Logging.Format = strings.ToLower(strings.TrimSpace(c.Logging.Format))
	c.DistributedLock.Type = strings.ToLower(strings.TrimSpace(c.DistributedLock.Type))
	if c.DistributedLock.ID = strings.TrimSpace(c.DistributedLock.ID); c.DistributedLock.ID == "" {
		c.DistributedLock.ID = defaultInstanceID()
	}
	c.DistributedLock.DevKubeConfig = expandHome(c.DistributedLock.DevKubeConfig)
	c.DataDir = expandHome(c.DataDir)
	c.Persistence.SQLite.Path = expandHome(c.Persistence.SQLite.Path)
	c.TLS.CertPath = expandHome(c.TLS.CertPath)
	c.TLS.KeyPath = expandHome(c.TLS.KeyPath)
	for i := range c.LND.Nodes {
		n := &c.LND.Nodes[i]
		n.MacaroonPath = expandHome(n.MacaroonPath)
		n.TLSCertPath = expandHome(n.TLSCertPath)
	}
}

// expandHome replaces a leading ~ with the user's home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}

// knownEnv lists the environment variables conf reads, taken from its usage.
func knownEnv(cfg *Config) ([]string, error) {
	u, err := Usage(cfg)
	if err != nil {
		return nil, err
	}
	_, envSection, _ := strings.Cut(u, "ENVIRONMENT\n")
	var names []string
	for line := range strings.SplitSeq(envSection, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// UnknownEnv returns the LNMUX_ variables in environ that no setting reads
// (typically a typo: LNMUX_IDENTITYKEY would leave the file's key in use).
// LNMUX_TEST_ variables belong to the test suites.
func UnknownEnv(cfg *Config, environ []string) []string {
	known, err := knownEnv(cfg)
	if err != nil {
		return nil
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !strings.HasPrefix(name, envPrefix+"_TEST_") &&
			!slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}
