"""Negotiation instruments (docs/design.md §7): receipts, sealed-offer rounds and
agreements as signed, logged acts, judged by one pure rule set (`ledger.judge`) on the
server, in members' SDKs and in the audit."""
