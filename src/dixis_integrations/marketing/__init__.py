"""Marketing: customer segmentation, journeys and email providers."""

__all__: list[str] = []
