"""Publishing a mail domain's records into the customer's DNS, merged and never clobbered.

A pure library (no database, no settings): `publish.publish_record` / `publish.remove_record`
apply the merge rules through a `backends.Backend` (RFC 2136 UPDATE with TSIG, dns-lexicon's
providers). The stack's DNS record resources (`stacks/dns.py`) and the domain layer both use it.
"""
