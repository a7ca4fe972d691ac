from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from apps.catalog import fastreads, media, tasks  # noqa: F401  registers the tasks
        from ecommerce import outbox

        # Warm public reads are answered before Django's handler (ecommerce/api/fastpath.py).
        fastreads.register_routes()

        # An added image gets its thumbnails from a worker, after commit.
        outbox.register(media.MEDIA_ADDED, task=media.MAKE_THUMBNAILS_TASK)
