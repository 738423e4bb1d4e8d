// Package e2e runs lnmuxd, as its own process, against a real regtest
// cluster (btcd, Alice and Bob multiplexed, Carol paying) and checks what the
// README promises: invoices payable through any node, multi-part payments
// across nodes, fail-over, BOLT 4 failures seen by the payer, crash recovery
// and final states that come from lnd. It has tests only.
package e2e
