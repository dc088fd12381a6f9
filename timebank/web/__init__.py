"""The web pages: server-rendered HTML for members on a phone, coordinators at a desk and
funders reading a report. Pages call the same services as the JSON API, so who may do what is
decided in one place; the pages only ask, show and re-ask."""
