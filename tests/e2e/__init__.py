"""End-to-end tests: a real headless Chromium (Playwright) driving ``streamlit run app.py``."""
