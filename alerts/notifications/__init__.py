"""Notifications of incidents: channels, the durable outbox, and one small transport per channel kind.

``messages`` says what is sent, ``transports`` how (email, Slack, webhook), ``outbox`` when and how often
(a row per notification before it is sent; workers claim rows, retry with backoff), ``models`` the rows.
"""
