"""Channel adapters (web chat, Telegram, Slack, forum webhook) and the composition root."""
