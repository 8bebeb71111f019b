"""scraper_project: a Scrapy-based concurrent page checker."""
