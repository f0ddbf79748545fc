"""The vendors' own Python clients against the served sandboxes (the ``[contract]`` extra).

If ``hubspot-api-client`` or ``simple-salesforce`` is not installed, its tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.salesforce import SalesforceSandbox
from dixis_integrations.sandbox.serve import serve


@pytest.fixture
def hubspot_served() -> Iterator[HubSpotSandbox]:
    box = HubSpotSandbox()
    with serve(box.handle) as served:
        box.bind(served.base_url)
        yield box


@pytest.fixture
def salesforce_served() -> Iterator[SalesforceSandbox]:
    box = SalesforceSandbox()
    with serve(box.handle) as served:
        box.bind(served.base_url)
        yield box


def test_hubspot_api_client_batch_upserts_and_reads_back(hubspot_served: HubSpotSandbox) -> None:
    hubspot = pytest.importorskip("hubspot")
    contacts: Any = pytest.importorskip("hubspot.crm.contacts")
    client = hubspot.HubSpot(access_token=hubspot_served.access_token, host=hubspot_served.base_url)
    batch = contacts.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            contacts.SimplePublicObjectBatchInputUpsert(
                id_property="email", id="sdk@example.gr", properties={"firstname": "Σ"}
            )
        ]
    )
    result = client.crm.contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=batch
    )
    assert result.results[0].properties["email"] == "sdk@example.gr"
    read = client.crm.contacts.basic_api.get_by_id(result.results[0].id)
    assert read.properties["firstname"] == "Σ"


def test_hubspot_api_client_sees_a_wrong_token_as_401(hubspot_served: HubSpotSandbox) -> None:
    hubspot = pytest.importorskip("hubspot")
    exceptions: Any = pytest.importorskip("hubspot.crm.contacts.exceptions")
    client = hubspot.HubSpot(access_token="wrong", host=hubspot_served.base_url)
    with pytest.raises(exceptions.ApiException) as info:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert info.value.status == 401


def _plain_http_session(base_url: str) -> Any:
    """A requests session that sends simple-salesforce's https URLs to the plain-http
    loopback sandbox (the client hard-codes https; the sandbox serves http)."""
    requests = pytest.importorskip("requests")
    adapters: Any = pytest.importorskip("requests.adapters")
    host = base_url.split("//", 1)[1]

    class _ToHttp(adapters.HTTPAdapter):  # type: ignore[misc]
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace(f"https://{host}", f"http://{host}", 1)
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount(f"https://{host}", _ToHttp())
    return session


def test_simple_salesforce_upserts_queries_and_deletes(
    salesforce_served: SalesforceSandbox,
) -> None:
    sf_module: Any = pytest.importorskip("simple_salesforce")
    from dixis_integrations.crm.salesforce import SalesforceJWTAuth

    box = salesforce_served
    auth = SalesforceJWTAuth(
        client_id=box.client_id,
        username=box.username,
        private_key=__import__("pydantic").SecretStr(box.private_key_pem),
        login_url=box.base_url,
    )
    import httpx

    with httpx.Client(auth=auth) as c:
        assert c.get(f"{box.base_url}/services/data/v59.0/limits").status_code == 200
    token = auth._current()
    assert token is not None
    sf = sf_module.Salesforce(
        instance_url=box.base_url,
        session_id=token[0].get_secret_value(),
        session=_plain_http_session(box.base_url),
    )
    status = sf.Contact.upsert(
        "Dixis_Customer_Id__c/cus_9", {"LastName": "Ζ", "Email": "sf@example.gr"}
    )
    assert status == 201
    again = sf.Contact.upsert("Dixis_Customer_Id__c/cus_9", {"FirstName": "Α"})
    assert again == 200
    found = sf.query("SELECT Id, Email FROM Contact WHERE Email = 'sf@example.gr'")
    assert found["totalSize"] == 1
    lead = sf.Lead.create({"LastName": "Λ", "Company": "Κτήμα"})
    assert lead["success"] is True
    with pytest.raises(sf_module.exceptions.SalesforceMalformedRequest):
        sf.Lead.create({"LastName": "Λ"})
    assert sf.Contact.delete(found["records"][0]["Id"]) == 204
