# A class server: the dashboard on port 8501, installed as a package (pip install .).
#   docker build -t cnn-explorer .
#   docker run -p 8501:8501 -v cnn-data:/data cnn-explorer
# The filter-pattern disk cache and Keras' downloaded ImageNet weights live on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    CNN_VIZ_CACHE=/data/cache \
    KERAS_HOME=/data/keras

WORKDIR /build
COPY pyproject.toml requirements.txt README.md LICENSE app.py ./
COPY .streamlit ./.streamlit
COPY viz_core ./viz_core
COPY ui ./ui
COPY pages ./pages
COPY assets ./assets
RUN pip install . && rm -rf /build

RUN useradd --create-home --uid 1000 explorer \
    && mkdir -p /data/cache /data/keras && chown -R explorer /data
USER explorer
WORKDIR /home/explorer
VOLUME /data

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["cnn-explorer", "app", "--address", "0.0.0.0", "--port", "8501"]
