"""Factories for accounts with roles."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group

from apps.users.models import User
from ecommerce.api.permissions import Role

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        for role in extracted or (Role.CUSTOMER,):
            group, _ = Group.objects.get_or_create(name=role)
            self.groups.add(group)
