"""Serializer fields that take only the JSON type the schema promises.

DRF's CharField turns a JSON number into its string (`{"name": 0}` is the name "0"), and
its BooleanField reads `0`, `"yes"` and `"on"`: a client's type error is stored instead of
refused. Form bodies carry only text, so text fields refusing everything else costs them
nothing; a boolean in a form is still read from its text.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ecommerce.api.parsers import FormData


class TextOnly(serializers.CharField):
    """Refuse anything but a string before DRF's own conversion runs."""

    default_error_messages = {"not_text": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return str(super().to_internal_value(data))


class CharField(TextOnly):
    pass


class EmailField(TextOnly, serializers.EmailField):
    pass


class URLField(TextOnly, serializers.URLField):
    pass


class SlugField(TextOnly, serializers.SlugField):
    pass


class RegexField(TextOnly, serializers.RegexField):
    pass


class ChoiceField(serializers.ChoiceField):
    """A choice given as the string the schema's enum lists (DRF also takes `1` for "1")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    """`true` or `false` in JSON; in a form body, DRF's reading of the text."""

    def to_internal_value(self, data: Any) -> bool:
        sent_as_form = isinstance(getattr(self.root, "initial_data", None), FormData)
        if not isinstance(data, bool) and not sent_as_form:
            self.fail("invalid", input=data)
        return bool(super().to_internal_value(data))
