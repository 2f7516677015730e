"""Alert delivery to other systems: signed webhooks from a durable outbox, with retries and a log."""
