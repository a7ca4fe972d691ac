"""Catalog endpoints. Public reads are served as cached JSON bytes; staff reads and all
writes go through selectors and services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import media as media_services
from apps.catalog import selectors, services
from apps.catalog.exceptions import (
    AttributeNotFound,
    ImageTooLarge,
    ImageTooManyPixels,
    InvalidAttributes,
    InvalidCategory,
    InvalidImage,
    MediaNotFound,
    ProductNotFound,
    ProductTypeNotFound,
    SkuTaken,
    SlugTaken,
)
from apps.catalog.filters import (
    ProductFilter,
    ProductFilterBackend,
    ProductOrdering,
    ProductPagination,
)
from apps.catalog.models import Attribute, Category, Product, ProductType, ProductVariant
from apps.catalog.search import ProductSearchFilter
from apps.catalog.serializers import (
    MEDIA_EXAMPLE,
    AttributeInputSerializer,
    AttributeOutputSerializer,
    AttributeUpdateInputSerializer,
    AttributeValuesInputSerializer,
    AttributeValuesOutputSerializer,
    CategoryInputSerializer,
    CategoryTreeSerializer,
    MediaInputSerializer,
    MediaOutputSerializer,
    MediaUpdateInputSerializer,
    ProductCreateInputSerializer,
    ProductDetailOutputSerializer,
    ProductListOutputSerializer,
    ProductTypeInputSerializer,
    ProductTypeOutputSerializer,
    ProductTypeUpdateInputSerializer,
    ProductUpdateInputSerializer,
    VariantInputSerializer,
    VariantOutputSerializer,
    VariantUpdateInputSerializer,
)
from ecommerce.api import identifiers
from ecommerce.api.conditional import cached_json_response
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.parsers import PayloadTooLarge
from ecommerce.api.permissions import HasRole, Role, has_role
from ecommerce.api.ratelimit import PiggybackRateLimitMixin, pending_count
from ecommerce.api.schema import problems


def _is_catalog_staff(request: Request) -> bool:
    return has_role(request.user, Role.CATALOG_MANAGER)


def _checked(lookup: str) -> str:
    """A SKU, or a numeric id the id column can hold (else no product has it: 404)."""
    if lookup.isdigit() and not identifiers.is_id(lookup):  # ASCII: the route's pattern
        raise ProductNotFound(lookups=[lookup])
    return lookup


class ImageUploadParser(parsers.MultiPartParser):
    """multipart/form-data whose files are capped at MEDIA_MAX_BYTES as they arrive
    (apps.catalog.media.CappedUploadHandler), never buffered whole; its text fields keep
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE cap (413)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> parsers.DataAndFiles:
        context = parser_context or {}
        request = context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handlers = [media_services.CappedUploadHandler(request._request)]
        encoding = context.get("encoding") or "utf-8"
        try:
            data, files = DjangoMultiPartParser(meta, stream, handlers, encoding).parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Malformed multipart body: {exc}") from None
        except RequestDataTooBig:
            raise PayloadTooLarge("The form fields exceed the request size limit.") from None
        except SuspiciousOperation as exc:  # too many fields or files, a malformed part
            raise ParseError(f"Malformed multipart body: {exc}") from None
        return parsers.DataAndFiles(data, files)


class PublicReadsMixin:
    """Anyone may call `public_actions`; every other action is for catalog managers."""

    action: str | None
    public_actions: tuple[str, ...] = ("list", "retrieve")

    def get_permissions(self) -> list[BasePermission]:
        if self.action in self.public_actions:
            return [AllowAny()]
        return [HasRole.of(Role.CATALOG_MANAGER)()]


class ProductViewSet(PiggybackRateLimitMixin, PublicReadsMixin, viewsets.GenericViewSet):
    """Products by SKU (or numeric id). Anyone reads active products; catalog managers and
    admins also see inactive ones, and write."""

    lookup_field = "sku"
    lookup_value_regex = r"[A-Za-z0-9._-]{1,64}"
    # Search first: the filters keep the searched products as the facets' base.
    filter_backends = (ProductSearchFilter, ProductFilterBackend, ProductOrdering)
    filterset_class = ProductFilter
    pagination_class = ProductPagination
    search_fields = ("name", "sku")
    ordering_fields = ("price", "name", "created_at")
    ordering = ("name", "pk")
    serializer_class = ProductDetailOutputSerializer
    # Public pages are cached by these parameters; links carry nothing else.
    link_query_params = selectors.LIST_PARAMS

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.products(include_inactive=_is_catalog_staff(self.request))

    def _product(self, lookup: str) -> Product:
        return selectors.get_product(lookup=_checked(lookup), include_inactive=True)

    def get_object(self) -> Product:
        """The product the URL names, by id or any variant SKU. DRF's OPTIONS asks for it
        (the default would filter products on a `sku` column they no longer have)."""
        product = self._product(self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, product)
        return product

    def _list_page(self) -> dict[str, Any]:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = ProductListOutputSerializer(page, many=True).data
        body: dict[str, Any] = self.get_paginated_response(data).data
        facets = getattr(self.paginator, "facets", None)  # read with the page (ProductPagination)
        if facets is not None:
            body["facets"] = facets
        return body

    @extend_schema(
        summary="List products",
        description="Active products for everyone (served from cache); catalog managers "
        "also see inactive ones. Searching ranks the best matches first; `attr`, prices, "
        "`in_stock` and `country` must all hold for one variant; `facets` adds value counts.",
        responses=ProductListOutputSerializer(many=True),
    )
    def list(self, request: Request) -> HttpResponse | Response:
        if _is_catalog_staff(request):
            return Response(self._list_page())
        entry = selectors.product_list_json(
            query=request.query_params,
            render=lambda: selectors.render_json(self._list_page()),
            piggyback=pending_count(request),
        )
        return cached_json_response(request, entry)

    @extend_schema(
        summary="Read a product by SKU or numeric id", responses=ProductDetailOutputSerializer
    )
    def retrieve(self, request: Request, sku: str) -> HttpResponse | Response:
        if _is_catalog_staff(request):
            return Response(ProductDetailOutputSerializer(self._product(sku)).data)
        entry = selectors.product_detail_json(
            lookup=_checked(sku), piggyback=pending_count(request)
        )
        return cached_json_response(request, entry)

    @extend_schema(
        summary="Create a product with its variants (catalog managers)",
        parameters=[location_parameter("The product, by its first SKU.")],
        request=ProductCreateInputSerializer,
        responses={
            status.HTTP_201_CREATED: ProductDetailOutputSerializer,
            **problems(
                SkuTaken(sku="TEE-BLK-M"),
                InvalidAttributes("The product type has no variant attribute colour."),
            ),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = ProductCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        variants = [_variant_spec(variant) for variant in data.pop("variants")]
        product = services.create_product(variants=variants, actor=request.user, **data)
        product = selectors.get_product(lookup=str(product.pk), include_inactive=True)
        return Response(
            ProductDetailOutputSerializer(product).data,
            status=status.HTTP_201_CREATED,
            headers=location("products", product.first_sku),  # type: ignore[attr-defined]
        )

    @extend_schema(
        summary="Replace a product's fields (catalog managers)",
        request=ProductUpdateInputSerializer,
        responses=ProductDetailOutputSerializer,
    )
    def update(self, request: Request, sku: str) -> Response:
        product = self._product(sku)
        serializer = ProductUpdateInputSerializer(
            data=request.data,
            partial=request.method == "PATCH",
            context={"currency": product.currency},
        )
        serializer.is_valid(raise_exception=True)
        services.update_product(product=product, **serializer.validated_data)
        return Response(ProductDetailOutputSerializer(self._product(str(product.pk))).data)

    @extend_schema(
        summary="Change some of a product's fields (catalog managers)",
        request=ProductUpdateInputSerializer,
        responses=ProductDetailOutputSerializer,
    )
    def partial_update(self, request: Request, sku: str) -> Response:
        return self.update(request, sku)

    @extend_schema(summary="Deactivate a product (catalog managers)", responses={204: None})
    def destroy(self, request: Request, sku: str) -> Response:
        """Deactivate: products are never hard-deleted."""
        services.deactivate_product(product=self._product(sku))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Add a variant to a product (catalog managers)",
        parameters=[location_parameter("The variant.")],
        request=VariantInputSerializer,
        responses={
            status.HTTP_201_CREATED: VariantOutputSerializer,
            **problems(SkuTaken(sku="TEE-BLK-L")),
        },
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="variants")
    def variants(self, request: Request, sku: str) -> Response:
        product = self._product(sku)
        serializer = VariantInputSerializer(
            data=request.data, context={"currency": product.currency}
        )
        serializer.is_valid(raise_exception=True)
        variant = services.add_variant(
            product=product, spec=_variant_spec(serializer.validated_data), actor=request.user
        )
        variant = selectors.get_variant(sku=variant.sku, include_inactive=True)
        return Response(
            VariantOutputSerializer(variant).data,
            status=status.HTTP_201_CREATED,
            headers=location("variants", variant.sku),
        )

    @extend_schema(
        summary="Add an image to a product (catalog managers)",
        parameters=[location_parameter("The image.")],
        description="A multipart form with the file in `image` and an optional `alt`. The "
        "image is judged by its bytes (JPEG, PNG, WebP or GIF), at most MEDIA_MAX_BYTES bytes "
        "and MEDIA_MAX_PIXELS pixels; it goes last in the product's gallery. Its thumbnails "
        "are made by a worker after the answer: `thumbnails` is empty until then.",
        request={"multipart/form-data": MediaInputSerializer},
        responses={
            status.HTTP_201_CREATED: MediaOutputSerializer,
            **problems(
                InvalidImage("The file is not a JPEG, PNG, WebP or GIF image."),
                ImageTooLarge(max_bytes=10485760),
                ImageTooManyPixels(max_pixels=40000000),
            ),
        },
        examples=[
            OpenApiExample(
                "The image added", value=MEDIA_EXAMPLE, response_only=True, status_codes=["201"]
            )
        ],
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="media", parser_classes=(ImageUploadParser,))
    def media(self, request: Request, sku: str) -> Response:
        product = self._product(sku)
        serializer = MediaInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = media_services.add_media(
            product=product,
            upload=serializer.validated_data["image"],
            alt=serializer.validated_data["alt"],
            actor=request.user,
        )
        return Response(
            MediaOutputSerializer(item).data,
            status=status.HTTP_201_CREATED,
            headers=location("products", sku, "media", item.pk),
        )

    @extend_schema(
        methods=["PATCH"],
        summary="Change an image's alternative text or place (catalog managers)",
        request=MediaUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: MediaOutputSerializer,
            **problems(MediaNotFound(media_id=9)),
        },
        examples=[
            OpenApiExample(
                "The image changed", value=MEDIA_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
        filters=False,
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Delete an image and its thumbnails (catalog managers)",
        responses={status.HTTP_204_NO_CONTENT: None, **problems(MediaNotFound(media_id=9))},
        filters=False,
    )
    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=rf"media/(?P<media_id>{identifiers.ID_PATTERN})",
    )
    def media_item(self, request: Request, sku: str, media_id: str) -> Response:
        product = self._product(sku)
        item = media_services.get_media(
            product=product, media_id=identifiers.id_from_path(media_id)
        )
        if request.method == "DELETE":
            media_services.delete_media(media=item)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = MediaUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        item = media_services.update_media(media=item, **serializer.validated_data)
        return Response(MediaOutputSerializer(item).data)


def _variant_spec(data: dict[str, Any]) -> services.VariantSpec:
    return services.VariantSpec(
        sku=data["sku"],
        price=data["price"],
        name=data.get("name", ""),
        attributes=data.get("attributes", {}),
        weight_grams=data.get("weight_grams"),
        is_active=data.get("is_active", True),
        initial_stock=data.get("stock", 0),
    )


class VariantViewSet(viewsets.GenericViewSet):
    """Variants by SKU (catalog managers): read one, change its price, name, attribute
    values, weight or activity. Products list their variants for everyone."""

    lookup_field = "sku"
    lookup_value_regex = r"[A-Za-z0-9._-]{1,64}"
    filter_backends = ()
    pagination_class = None
    serializer_class = VariantOutputSerializer
    permission_classes = (HasRole.of(Role.CATALOG_MANAGER),)

    def get_queryset(self) -> QuerySet[ProductVariant]:
        return ProductVariant.objects.all()

    @extend_schema(summary="Read a variant by SKU (catalog managers)")
    def retrieve(self, request: Request, sku: str) -> Response:
        variant = selectors.get_variant(sku=sku, include_inactive=True)
        return Response(VariantOutputSerializer(variant).data)

    @extend_schema(
        summary="Change a variant (catalog managers)",
        request=VariantUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: VariantOutputSerializer,
            **problems(InvalidAttributes("size: 'xxl' is not one of: s, m, l.")),
        },
    )
    def partial_update(self, request: Request, sku: str) -> Response:
        variant = selectors.get_variant(sku=sku, include_inactive=True)
        serializer = VariantUpdateInputSerializer(
            data=request.data, partial=True, context={"currency": variant.currency}
        )
        serializer.is_valid(raise_exception=True)
        services.update_variant(variant=variant, **serializer.validated_data)
        return Response(
            VariantOutputSerializer(selectors.get_variant(sku=sku, include_inactive=True)).data
        )


class CategoryViewSet(PublicReadsMixin, viewsets.GenericViewSet):
    """The category tree (public); catalog managers create and edit categories."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    pagination_class = None
    filter_backends = (OrderingFilter,)  # the tree is listed whole, in a fixed order
    serializer_class = CategoryTreeSerializer

    public_actions = ("list",)

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.all()

    @extend_schema(
        summary="The category tree",
        responses=CategoryTreeSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        roots = self.filter_queryset(
            selectors.category_tree(include_inactive=_is_catalog_staff(request))
        )
        return Response(CategoryTreeSerializer(roots, many=True).data)

    @extend_schema(
        summary="Create a category (catalog managers)",
        request=CategoryInputSerializer,
        responses={
            status.HTTP_201_CREATED: CategoryTreeSerializer,
            **problems(InvalidCategory("A category with slug tees already exists.")),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = CategoryInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.create_category(**serializer.validated_data)
        return Response(_category_out(category), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rename, move or (de)activate a category (catalog managers)",
        request=CategoryInputSerializer,
        responses={
            status.HTTP_200_OK: CategoryTreeSerializer,
            **problems(InvalidCategory("A category cannot be its own ancestor.")),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        category = self.get_object()
        serializer = CategoryInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        category = services.update_category(category=category, **serializer.validated_data)
        return Response(_category_out(category))


def _category_out(category: Category) -> dict[str, Any]:
    category.tree_children = []  # type: ignore[attr-defined]
    return CategoryTreeSerializer(category).data


class AttributeViewSet(PublicReadsMixin, viewsets.GenericViewSet):
    """Attributes with their choice values (public, for filters and facets); catalog
    managers declare attributes, change them and add choice values."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400
    serializer_class = AttributeOutputSerializer

    def get_queryset(self) -> QuerySet[Attribute]:
        return selectors.attributes()

    @extend_schema(summary="List attributes with their choice values")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AttributeOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Read an attribute by slug",
        responses={
            status.HTTP_200_OK: AttributeOutputSerializer,
            **problems(AttributeNotFound(slug="size")),
        },
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(AttributeOutputSerializer(selectors.get_attribute(slug=slug)).data)

    @extend_schema(
        summary="Declare an attribute, with its choice values (catalog managers)",
        parameters=[location_parameter("The attribute.")],
        request=AttributeInputSerializer,
        responses={
            status.HTTP_201_CREATED: AttributeOutputSerializer,
            **problems(
                SlugTaken(kind="attribute", slug="size"),
                InvalidAttributes("width: only choice attributes declare values."),
            ),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = AttributeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        values = [services.ValueSpec(**value) for value in data.pop("values")]
        attribute = services.create_attribute(values=values, **data)
        return Response(
            AttributeOutputSerializer(selectors.get_attribute(slug=attribute.slug)).data,
            status=status.HTTP_201_CREATED,
            headers=location("attributes", attribute.slug),
        )

    @extend_schema(
        summary="Rename an attribute, or change its unit, type or filtering (catalog managers)",
        request=AttributeUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: AttributeOutputSerializer,
            **problems(
                AttributeNotFound(slug="size"),
                InvalidAttributes("size has values: its type cannot change from choice."),
            ),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        attribute = selectors.get_attribute(slug=slug)
        serializer = AttributeUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_attribute(attribute=attribute, **serializer.validated_data)
        return Response(AttributeOutputSerializer(selectors.get_attribute(slug=slug)).data)

    @extend_schema(
        summary="Add choice values to an attribute (catalog managers)",
        request=AttributeValuesInputSerializer,
        responses={
            status.HTTP_201_CREATED: AttributeValuesOutputSerializer,
            **problems(
                AttributeNotFound(slug="size"),
                SlugTaken(kind="value", slug="xl"),
                InvalidAttributes("width: only choice attributes declare values."),
            ),
        },
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="values")
    def values(self, request: Request, slug: str) -> Response:
        attribute = selectors.get_attribute(slug=slug)
        serializer = AttributeValuesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.add_attribute_values(
            attribute=attribute,
            values=[services.ValueSpec(**value) for value in serializer.validated_data["values"]],
        )
        return Response(
            AttributeValuesOutputSerializer({"values": created}).data,
            status=status.HTTP_201_CREATED,
        )


class ProductTypeViewSet(PublicReadsMixin, viewsets.GenericViewSet):
    """Product types and the attributes their products and variants declare (public);
    catalog managers create and change them."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400
    serializer_class = ProductTypeOutputSerializer

    def get_queryset(self) -> QuerySet[ProductType]:
        return selectors.product_types()

    @extend_schema(summary="List product types with their attributes")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ProductTypeOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Read a product type by slug",
        responses={
            status.HTTP_200_OK: ProductTypeOutputSerializer,
            **problems(ProductTypeNotFound(slug="t-shirt")),
        },
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(ProductTypeOutputSerializer(selectors.get_product_type(slug=slug)).data)

    @extend_schema(
        summary="Create a product type (catalog managers)",
        parameters=[location_parameter("The product type.")],
        request=ProductTypeInputSerializer,
        responses={
            status.HTTP_201_CREATED: ProductTypeOutputSerializer,
            **problems(
                SlugTaken(kind="product type", slug="t-shirt"),
                InvalidAttributes(
                    "An attribute is declared for products or for variants, not both: size."
                ),
            ),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = ProductTypeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product_type = services.create_product_type(**serializer.validated_data)
        return Response(
            ProductTypeOutputSerializer(selectors.get_product_type(slug=product_type.slug)).data,
            status=status.HTTP_201_CREATED,
            headers=location("product-types", product_type.slug),
        )

    @extend_schema(
        summary="Rename a product type, change its tax class or attributes (catalog managers)",
        description="An attribute the type stops declaring loses its values on every "
        "product or variant of the type.",
        request=ProductTypeUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: ProductTypeOutputSerializer,
            **problems(
                ProductTypeNotFound(slug="t-shirt"),
                InvalidAttributes(
                    "An attribute is declared for products or for variants, not both: size."
                ),
            ),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        product_type = selectors.get_product_type(slug=slug)
        serializer = ProductTypeUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_product_type(product_type=product_type, **serializer.validated_data)
        return Response(ProductTypeOutputSerializer(selectors.get_product_type(slug=slug)).data)
