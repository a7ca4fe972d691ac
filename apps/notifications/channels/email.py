"""Email: templates/notifications/<event>/{subject.txt,body.txt,body.html} through Django's backend.

The backend comes from EMAIL_URL (console in development, SMTP in production). SMTP
answers are sorted by their code: 5xx refusals are final, anything else (4xx, a dropped
connection, a timeout) is retried; all SMTP calls pass the shared "smtp" circuit breaker.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string

from apps.notifications.exceptions import DeliveryRefused, DeliveryUnavailable
from apps.notifications.models import NotificationEvent
from apps.users import tokens as users_tokens
from ecommerce.resilience.breaker import breaker

if TYPE_CHECKING:
    from apps.notifications.models import Notification

SMTP_BREAKER = "smtp"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def template_context(notification: Notification) -> dict[str, Any]:
    """What the templates see: the event's snapshot, the recipient, and links.

    The set-password link is made now, not stored: it is a credential, and it is only
    offered while the account still has no usable password.
    """
    user = notification.recipient
    context: dict[str, Any] = {
        **notification.context,
        "user": user,
        "event": notification.event,
        "frontend_url": settings.FRONTEND_URL,
    }
    if notification.event == NotificationEvent.USER_REGISTERED and not user.has_usable_password():
        token = users_tokens.make_set_password_token(user=user)
        context["set_password_url"] = f"{settings.SET_PASSWORD_URL}?{urlencode({'token': token})}"
        context["set_password_valid_hours"] = settings.PASSWORD_RESET_TIMEOUT // 3600
    return context


def render_email(notification: Notification) -> RenderedEmail:
    """Render the three templates of the notification's event.

    Raises DeliveryRefused when a template is missing or broken (retrying cannot help).
    """
    context = template_context(notification)
    folder = f"notifications/{notification.event}"
    try:
        subject = render_to_string(f"{folder}/subject.txt", context)
        text = render_to_string(f"{folder}/body.txt", context)
        html = render_to_string(f"{folder}/body.html", context)
    except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
        raise DeliveryRefused(
            reason="template_error", detail=f"{type(exc).__name__}: {exc}"
        ) from exc
    # A header must be one line.
    return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)


def _transmit(message: EmailMultiAlternatives) -> None:
    """Hand the message to the backend, sorting SMTP failures into final and retryable."""
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        reason = f"smtp_{codes[0]}" if codes else "smtp_recipients_refused"
        if codes and all(code >= 500 for code in codes):
            raise DeliveryRefused(reason=reason, detail=f"Recipient refused: {exc}") from exc
        raise DeliveryUnavailable(reason=reason, detail=f"Recipient deferred: {exc}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        # Our credentials, not the message: retried, so mail flows once they are fixed.
        raise DeliveryUnavailable(reason="smtp_auth", detail=f"SMTP login failed: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        reason = f"smtp_{exc.smtp_code}"
        detail = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        if exc.smtp_code >= 500:
            raise DeliveryRefused(reason=reason, detail=detail) from exc
        raise DeliveryUnavailable(reason=reason, detail=detail) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryUnavailable(
            reason="smtp_unavailable", detail=f"{type(exc).__name__}: {exc}"
        ) from exc


def send_email(notification: Notification) -> None:
    """Render and send the notification's email to its recipient.

    Raises DeliveryRefused (no address, template error, 5xx), DeliveryUnavailable and
    CircuitOpen.
    """
    recipient = notification.recipient
    if not recipient.email:
        raise DeliveryRefused(reason="no_address", detail="The recipient has no email address.")
    rendered = render_email(notification)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={"X-Notification-Id": str(notification.public_id)},
    )
    message.attach_alternative(rendered.html, "text/html")
    with breaker(SMTP_BREAKER).guard(transient=(DeliveryUnavailable,)):
        _transmit(message)
