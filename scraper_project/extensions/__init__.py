"""Scrapy extensions of the page checker."""
