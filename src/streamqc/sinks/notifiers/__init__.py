"""Notifiers: where the outbox delivers journal records (webhook, Slack, PagerDuty, stdout)."""

from __future__ import annotations

from streamqc.sinks.config import PagerDutyConfig, SlackConfig, StdoutConfig, WebhookConfig
from streamqc.sinks.notifiers.base import DeliveryError, Notifier, PermanentError, RetryableError
from streamqc.sinks.notifiers.pagerduty import PagerDutyNotifier
from streamqc.sinks.notifiers.slack import SlackNotifier
from streamqc.sinks.notifiers.stdout import StdoutNotifier
from streamqc.sinks.notifiers.webhook import WebhookNotifier


def build_notifier(config: WebhookConfig | SlackConfig | PagerDutyConfig | StdoutConfig) -> Notifier:
    """A notifier from its validated config; ConfigError when a secret's variable is unset."""
    if isinstance(config, WebhookConfig):
        return WebhookNotifier(config.name, str(config.url), config.resolved_secret(), config.headers, config.timeout_s)
    if isinstance(config, SlackConfig):
        return SlackNotifier(config.name, config.resolved_url(), config.timeout_s)
    if isinstance(config, PagerDutyConfig):
        return PagerDutyNotifier(config.name, str(config.url), config.resolved_routing_key(), config.source,
                                 config.timeout_s)
    return StdoutNotifier(config.name)


__all__ = ["DeliveryError", "Notifier", "PermanentError", "RetryableError", "build_notifier"]
