package main

import (
	"net/http"

	"github.com/lnmux/lnmux/adapters/web"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// mountConsole adds the console to routes when the configuration asks for
// it, and reports whether it did.
func mountConsole(cfg *config.Config, routes *http.ServeMux) (bool, error) {
	on, err := cfg.ConsoleOn()
	if err != nil || !on {
		return false, err
	}
	routes.Handle(web.Prefix, web.NewHandler(web.Options{AcceptTimeout: cfg.Invoice.AcceptTimeout}))
	routes.Handle("GET /{$}", web.RedirectRoot())
	return true, nil
}
