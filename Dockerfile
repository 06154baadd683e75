FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY conversations conversations
COPY bots bots
# migrations, catalogs and static files are package data: a plain install carries them
RUN pip install --no-cache-dir .
ENV GONGNON_DATA_DIR=/data
EXPOSE 8080
CMD ["gongnon", "serve"]
