FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core core
COPY conversations conversations
COPY bots bots
COPY migrations migrations
# editable: the code runs from /app, beside migrations/ and the web page's static files
RUN pip install --no-cache-dir -e .
ENV GONGNON_DATA_DIR=/data
EXPOSE 8080
CMD ["gongnon", "serve"]
