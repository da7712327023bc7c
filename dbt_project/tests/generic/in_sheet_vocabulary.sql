{#- Every non-null value is one of the seed sheet_vocabulary's values for that vocabulary (the
    controlled columns of the outcome sheets have their one home in that seed). -#}
{% test in_sheet_vocabulary(model, column_name, vocabulary) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in (
      select value from {{ ref('sheet_vocabulary') }} where column_name = '{{ vocabulary }}')
{% endtest %}
