"""The sandbox engine: the real `stacks/` program under Pulumi's mock runtime, with simulated
provider results kept per stack (in Postgres by default) so ids and addresses stay stable.

Its state table is `database.models.sandbox` (every table lives in `database/models/`)."""
