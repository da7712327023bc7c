{#-
  The subset of the ClinicalTrials.gov API v2 study record that staging reads, as a DuckDB
  json_transform structure. Missing keys become null; unknown keys are ignored.
-#}
{% macro ctgov_study_structure() -%}
{%- set date_struct = '{"date":"VARCHAR","type":"VARCHAR"}' -%}
{%- set structure -%}
{"protocolSection":{
  "identificationModule":{"nctId":"VARCHAR","nctIdAliases":["VARCHAR"],"briefTitle":"VARCHAR","officialTitle":"VARCHAR","acronym":"VARCHAR",
    "orgStudyIdInfo":{"id":"VARCHAR","type":"VARCHAR","link":"VARCHAR"},
    "secondaryIdInfos":[{"id":"VARCHAR","type":"VARCHAR","domain":"VARCHAR","link":"VARCHAR"}],
    "organization":{"fullName":"VARCHAR","class":"VARCHAR"}},
  "statusModule":{"statusVerifiedDate":"VARCHAR","overallStatus":"VARCHAR","lastKnownStatus":"VARCHAR","whyStopped":"VARCHAR",
    "startDateStruct":{{ date_struct }},"primaryCompletionDateStruct":{{ date_struct }},"completionDateStruct":{{ date_struct }},
    "studyFirstSubmitDate":"VARCHAR","studyFirstPostDateStruct":{{ date_struct }},"resultsFirstPostDateStruct":{{ date_struct }},
    "lastUpdatePostDateStruct":{{ date_struct }}},
  "sponsorCollaboratorsModule":{"responsibleParty":{"type":"VARCHAR"},"leadSponsor":{"name":"VARCHAR","class":"VARCHAR"},
    "collaborators":[{"name":"VARCHAR","class":"VARCHAR"}]},
  "descriptionModule":{"briefSummary":"VARCHAR","detailedDescription":"VARCHAR"},
  "conditionsModule":{"conditions":["VARCHAR"],"keywords":["VARCHAR"]},
  "designModule":{"studyType":"VARCHAR","phases":["VARCHAR"],"patientRegistry":"BOOLEAN",
    "designInfo":{"allocation":"VARCHAR","interventionModel":"VARCHAR","primaryPurpose":"VARCHAR","observationalModel":"VARCHAR","timePerspective":"VARCHAR","maskingInfo":{"masking":"VARCHAR"}},
    "enrollmentInfo":{"count":"BIGINT","type":"VARCHAR"}},
  "armsInterventionsModule":{"armGroups":[{"label":"VARCHAR","type":"VARCHAR","description":"VARCHAR","interventionNames":["VARCHAR"]}],
    "interventions":[{"type":"VARCHAR","name":"VARCHAR","description":"VARCHAR","armGroupLabels":["VARCHAR"],"otherNames":["VARCHAR"]}]},
  "eligibilityModule":{"eligibilityCriteria":"VARCHAR","healthyVolunteers":"BOOLEAN","sex":"VARCHAR","minimumAge":"VARCHAR","maximumAge":"VARCHAR","stdAges":["VARCHAR"]},
  "contactsLocationsModule":{"locations":[{"facility":"VARCHAR","status":"VARCHAR","city":"VARCHAR","state":"VARCHAR","zip":"VARCHAR","country":"VARCHAR","geoPoint":{"lat":"DOUBLE","lon":"DOUBLE"}}]},
  "referencesModule":{"references":[{"pmid":"VARCHAR","type":"VARCHAR","citation":"VARCHAR"}]}},
 "derivedSection":{"miscInfoModule":{"versionHolder":"VARCHAR"},
   "conditionBrowseModule":{"meshes":[{"id":"VARCHAR","term":"VARCHAR"}]},
   "interventionBrowseModule":{"meshes":[{"id":"VARCHAR","term":"VARCHAR"}]}},
 "hasResults":"BOOLEAN"}
{%- endset -%}
{{ structure | replace('\n', '') | replace('  ', '') }}
{%- endmacro %}
