import pytest


@pytest.mark.django_db
def test_health_is_ok_on_real_services(api_client):
    response = api_client.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "up"
